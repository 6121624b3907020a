from pipelines.models import Pipeline
from pipelines.services import DEFAULT_STAGES, StageSpec, pipeline_create


def make_pipeline(workspace, name: str = "Partners", stage_names: tuple[str, ...] = ("Intro", "Trial", "Signed")) -> Pipeline:
    return pipeline_create(workspace=workspace, name=name, stages=[StageSpec(name=n) for n in stage_names])


def default_stage_names() -> list[str]:
    return [stage["name"] for stage in DEFAULT_STAGES]
