"""Plain, typed functions of the platform, grouped by stage, each stage a package whose
docstring says what it does and what it may import. Stages depend one way:

    core < data < quality < models < evaluation < platform < registry

Results persisted and estimators pickled before the stages existed name the flat modules of
that layout (``tasks.network.KerasMLPClassifier``): MOVED maps each such name to its module
now, so that they still load. ``tasks.data``, ``tasks.evaluation`` and ``tasks.registry`` are
packages now; nothing persisted named what those three modules held.
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "tasks.baselines": "tasks.models.baselines",
    "tasks.checkpoints": "tasks.models.checkpoints",
    "tasks.classifier_model": "tasks.registry.classifier_model",
    "tasks.compression": "tasks.evaluation.compression",
    "tasks.devices": "tasks.models.devices",
    "tasks.drift": "tasks.quality.drift",
    "tasks.errors": "tasks.core.errors",
    "tasks.events": "tasks.platform.events",
    "tasks.evidence": "tasks.evaluation.evidence",
    "tasks.explanations": "tasks.evaluation.explanations",
    "tasks.faults": "tasks.platform.faults",
    "tasks.features": "tasks.data.features",
    "tasks.jobs": "tasks.registry.jobs",
    "tasks.model_card": "tasks.registry.model_card",
    "tasks.monitoring": "tasks.quality.monitoring",
    "tasks.network": "tasks.models.network",
    "tasks.outcomes": "tasks.platform.outcomes",
    "tasks.packaging": "tasks.registry.packaging",
    "tasks.parameters": "tasks.core.parameters",
    "tasks.preprocessing": "tasks.models.preprocessing",
    "tasks.processes": "tasks.core.processes",
    "tasks.promotion": "tasks.evaluation.promotion",
    "tasks.registration": "tasks.registry.registration",
    "tasks.serving": "tasks.registry.serving",
    "tasks.settings": "tasks.platform.settings",
    "tasks.snapshots": "tasks.data.snapshots",
    "tasks.splits": "tasks.data.splits",
    "tasks.storage": "tasks.data.storage",
    "tasks.store": "tasks.registry.store",
    "tasks.streaming": "tasks.models.streaming",
    "tasks.suggest": "tasks.quality.suggest",
    "tasks.sweep": "tasks.evaluation.sweep",
    "tasks.tallies": "tasks.quality.tallies",
    "tasks.tracking": "tasks.registry.tracking",
    "tasks.training": "tasks.models.training",
    "tasks.validation": "tasks.quality.validation",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a module of the flat layout as the module it moved to (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        """Nothing to run: the module it moved to ran when it was imported."""


sys.meta_path.append(_MovedModules())
