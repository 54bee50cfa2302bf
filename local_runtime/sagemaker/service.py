"""LocalSageMaker: SageMaker's JSON API and the Step Functions integrations, acting with the roles given."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session

from local_runtime.access import AccessControl, AccessDenied, Check, Principal, sagemaker_checks
from local_runtime.errors import ServiceError
from local_runtime.lambdas import ProviderError
from local_runtime.sagemaker.common import Job
from local_runtime.sagemaker.hosting import Endpoint, Hosting
from local_runtime.sagemaker.processing import ProcessingJobs
from local_runtime.sagemaker.server_pool import DEFAULT_IDLE_SECONDS, ModelServerPool
from local_runtime.sagemaker.training import TrainingJobs
from local_runtime.sagemaker.transform import TransformJobs
from local_runtime.template import ACCOUNT, REGION


@cache
def _modeled_errors() -> set[str]:
    """The errors SageMaker's API model declares; the SDKs give these exception classes of their own."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {name for name in model.shape_names if model.shape_for(name).metadata.get("exception")}


# Step Functions manages these rules to learn when a .sync job ends; its role needs access to them.
SYNC_RULES = {
    "training": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "transform": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    "processing": "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
}


def image_checks(image: str) -> list[Check]:
    """What pulling a container image from ECR takes: a token, then the repository's layers."""
    registry, _, repository = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3] if registry.count(".") >= 3 else REGION
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0].split('@')[0]}"
    return [
        Check("ecr:GetAuthorizationToken", "*"),
        *(Check(action, arn) for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")),
    ]


class LocalSageMaker(TrainingJobs, TransformJobs, ProcessingJobs, Hosting):
    """Jobs and endpoints act with the execution role they are given: S3, image pulls and logs."""

    def __init__(
        self,
        client_as: Callable[[str, str, str], Any],
        access: AccessControl,
        workdir: Path,
        warm_pool_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self._client_as = client_as
        self.access = access
        self.workdir = workdir
        self.jobs: dict[tuple[str, str], Job] = {}  # by (kind, name): training and transform names are separate
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        # Model servers a transform job or a replaced endpoint no longer needs, kept warm; 0 keeps none.
        self.server_pool = ModelServerPool(warm_pool_seconds)
        self._lock = threading.RLock()
        # Fault injection for tests: endpoint name -> why its next deployment fails.
        self.failing_deployments: dict[str, str] = {}

    def handle(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            raise ServiceError("UnknownOperationException", f"{operation} is not supported by the local SageMaker")
        return method(request)

    def operations(self) -> list[str]:
        """The API actions served, spelled as Step Functions resources spell them (``createModel``)."""
        names = [name.removeprefix("op_") for name in dir(self) if name.startswith("op_")]
        return [name[:1].lower() + name[1:] for name in names]

    def _tag(self, arn: str, request: dict[str, Any]) -> None:
        self.tags.setdefault(arn, []).extend(request.get("Tags", []))

    def op_AddTags(self, request: dict[str, Any]) -> dict[str, Any]:
        self._tag(request["ResourceArn"], request)
        return {"Tags": self.tags[request["ResourceArn"]]}

    def op_ListTags(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": self.tags.get(request["ResourceArn"], [])}

    def _s3(self, role_arn: str) -> Any:
        return self._client_as("s3", role_arn, "SageMaker")

    def _pull(self, role_arn: str, image: str, acting_arn: str) -> None:
        """SageMaker takes the execution role for the job or model ``acting_arn``, then pulls the image."""
        try:
            principal = self.access.assume(role_arn, "sagemaker.amazonaws.com", "SageMaker", acting_arn)
        except AccessDenied as denied:
            raise RuntimeError(f"ClientError: SageMaker could not assume {role_arn}: {denied}") from None
        try:
            self.access.require(principal, *image_checks(image))
        except AccessDenied as denied:
            raise RuntimeError(f"ClientError: Unable to pull image {image}: {denied}") from None

    # request-response integrations --------------------------------------------------
    def run_call(self, api: str, request: dict[str, Any], caller: Principal | None, sdk: bool) -> dict[str, Any]:
        """A ``sagemaker:<api>`` or ``aws-sdk:sagemaker:<api>`` task, failing with the error name AWS gives:
        the error code for the SDK integration, the Java exception name for the optimised one."""
        operation = api[:1].upper() + api[1:]
        try:
            if caller is not None:
                for check in sagemaker_checks(operation, request):
                    decision = self.access.check(caller, check)
                    if not decision.allowed:
                        raise ServiceError("AccessDeniedException", decision.message)
            return json.loads(json.dumps(self.handle(operation, request), default=str))
        except ServiceError as error:
            name = error.code if sdk or error.code in _modeled_errors() else "AmazonSageMakerException"
            if not sdk and not name.endswith("Exception"):
                name += "Exception"
            if sdk:
                cause = f"{error} (Service: SageMaker, Status Code: {error.status}, Request ID: {uuid.uuid4()})"
            else:
                cause = (
                    f"{error} (Service: AmazonSageMaker; Status Code: {error.status}; Error Code: {error.code}; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)"
                )
            raise ProviderError(f"SageMaker.{name}", cause) from None

    # .sync integrations ----------------------------------------------------------
    def run_sync(self, kind: str, request: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
        """What ``create{Training,Transform,Processing}Job.sync`` return: the final Describe* output."""
        if caller is not None:
            self._authorize_sync(kind, request, caller)
        operation = f"{kind.title()}Job"
        try:
            getattr(self, f"op_Create{operation}")(request)
            job = self.jobs[kind, request[f"{operation}Name"]]
        except ServiceError as error:
            raise ProviderError(f"SageMaker.{error.code}", str(error)) from None
        job.done.wait()
        described = getattr(self, f"describe_{kind}")(job)
        if job.status != "Completed":
            # AWS names this States.TaskFailed, a name reserved for the engine itself.
            raise ProviderError(f"SageMaker.{kind.title()}JobFailed", json.dumps(described, default=str))
        return described

    def _authorize_sync(self, kind: str, request: dict[str, Any], caller: Principal) -> None:
        """The permissions a .sync task needs: the job's Create and Describe, the role it passes, the event rule."""
        operation = f"{kind.title()}Job"
        rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{SYNC_RULES[kind]}"
        checks = [
            *sagemaker_checks(f"Create{operation}", request),
            *sagemaker_checks(f"Describe{operation}", request),
            *(Check(action, rule) for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")),
        ]
        for check in checks:
            decision = self.access.check(caller, check)
            if not decision.allowed:
                events = check.action.startswith("events:")
                service = "AmazonCloudWatchEvents" if events else "AmazonSageMaker"
                raise ProviderError(
                    "Events.AccessDeniedException" if events else "SageMaker.AmazonSageMakerException",
                    f"{decision.message} (Service: {service}; Status Code: 400; Error Code: AccessDeniedException; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)",
                )

    def stop(self) -> None:
        for job in self.jobs.values():
            self._stop_job(job)
        for endpoint in list(self.endpoints.values()):
            if endpoint.server:
                endpoint.server.stop()
        self.server_pool.close()
        shutil.rmtree(self.workdir / "endpoints", ignore_errors=True)
