"""Core: what every stage uses and nothing of ``tasks`` is beneath. The errors a user can
cause (one base class, printed as one line), the job's bounded parameters, and the server
processes of this machine (free ports, waiting for an answer, stopping a process group).

May import: nothing of ``tasks``."""
