"""SageMaker on localhost: training and transform jobs as local processes, endpoints as local servers.

It follows SageMaker's contracts closely enough that the project's script-mode code cannot tell:
- training (``training.py``): channels copied from S3 into ``<job>/input/data/<channel>``,
  hyperparameters as ``--name value`` arguments, ``SM_*`` variables, the model packed as
  ``model.tar.gz`` in S3, metrics parsed from the output with the job's ``MetricDefinitions``;
- transform (``transform.py``): a model server per job, records split by line, ``DataProcessing``
  filters and joins, one ``<input>.out`` object per input object;
- hosting (``hosting.py``): models, endpoint configs, and endpoints as a model server process each;
  an update starts the new one, switches traffic only when it answers ``/ping``, and stops the old
  one after its last in-flight request.
``service.py`` puts them together behind SageMaker's JSON API and the Step Functions integrations.
"""

from local_runtime.sagemaker.service import LocalSageMaker

__all__ = ["LocalSageMaker"]
