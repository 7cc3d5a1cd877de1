"""Paper reproductions: the GAN family and ``geom`` on MNIST and CIFAR-10 beside published AUROCs.

:mod:`~xadt.reproduce.datasets` reads the benchmark files and splits them as each paper did,
:mod:`~xadt.reproduce.protocols` holds the ``reduced`` (CPU) and ``full`` (paper) budgets,
:mod:`~xadt.reproduce.papers` the published figures, and :mod:`~xadt.reproduce.runner` trains
and scores through the detector contract. ``xadt reproduce`` is the command.
"""
