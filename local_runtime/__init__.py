"""AWS on localhost: runs this project's SAM template, ASL, Lambda handlers, model code and ETL offline.

moto supplies the AWS APIs; this package adds what moto cannot do without Docker or AWS:
running Lambda handlers in-process, SageMaker training/transform/endpoints as local processes,
the Glue script on local Spark, and the template's API routes on 127.0.0.1.
"""
