"""The platform's own plumbing for a whole job: the settings (the only reader of the
environment, which turns it into the typed policies of the stages beneath: the promotion
policy, the metrics of a task), failpoints for tests, Prefect events and automations, and
the typed result of a job (`mlops train --json`).

It sits above the stages whose types it holds, and below the registry, which every one of
its modules would otherwise have to reach into.

May import: ``tasks.core``, ``tasks.data``, ``tasks.quality``, ``tasks.models``,
``tasks.evaluation``."""
