"""dagster-dask's executor, made to run one category's partition.

dagster-dask (0.29.27) hands each step's ``DagsterRun`` to ``dask.distributed.Client.submit``.
Dask parses a task's arguments and walks into every tuple; a ``DagsterRun`` is a named tuple,
and the run of one partition of a category carries a ``KeyRangesPartitionsSubset`` (a Dagster
``@record`` that refuses iteration), so every category run failed with "Iteration is not
allowed on `@record` KeyRangesPartitionsSubset".

Dagster itself does not use that subset on the step side: ``DagsterRun.
get_resolved_partitions_subset_for_events`` ignores a ``KeyRangesPartitionsSubset`` and reads
the run's ``dagster/partition`` tag instead. So the steps get the run without it (the tag
stays, the partition is the same); everything else is dagster-dask's own executor, config and
cluster handling.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.partitions.subset import KeyRangesPartitionsSubset
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.executor.base import Executor
from dagster_dask import dask_executor  # extra [dask]


def run_for_dask(run: dg.DagsterRun) -> dg.DagsterRun:
    """The run without the two records dask cannot walk: the key-range subset (the partition
    stays in the run's tags, where the steps read it) and the op-concurrency info (read by the
    run queue before the run starts, not by the steps)."""
    if isinstance(run.partitions_subset, KeyRangesPartitionsSubset):
        run = run._replace(partitions_subset=None)
    if run.run_op_concurrency is not None:
        run = run._replace(run_op_concurrency=None)
    return run


def _for_dask(context: PlanOrchestrationContext, executor: Executor) -> PlanOrchestrationContext:
    """The same plan context as dagster-dask's executor expects it (itself as the executor)."""
    return PlanOrchestrationContext(
        plan_data=context.plan_data._replace(dagster_run=run_for_dask(context.dagster_run)),
        log_manager=context.log,
        executor=executor,
        output_capture=context.output_capture,
        resume_from_failure=context.resume_from_failure,
    )


class PartitionSafeDaskExecutor(Executor):
    """dagster-dask's ``DaskExecutor``, given a run dask can parse."""

    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    def execute(self, plan_context, execution_plan):
        return self._inner.execute(_for_dask(plan_context, self._inner), execution_plan)


def _create(init_context) -> Executor:
    return PartitionSafeDaskExecutor(dask_executor.executor_creation_fn(init_context))


partition_safe_dask_executor = dg.ExecutorDefinition(
    name=dask_executor.name,
    config_schema=dask_executor.config_schema,
    requirements=dask_executor.get_requirements,
    executor_creation_fn=_create,
    description="dagster-dask's executor for runs of one category partition",
)
