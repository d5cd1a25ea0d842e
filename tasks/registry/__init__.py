"""The registry: MLflow tracking runs and the tracking store, a fitted candidate packaged as
an MLflow pyfunc model (with the code MLflow stores beside it), the registration protocol and
aliases with their audit trail, the serve check by MLflow's scoring server, the model card,
job identity, and exports of registered versions.

May import: every other stage."""
