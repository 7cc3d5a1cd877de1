"""What the commands do, as functions: train, score, evaluate, localize and the demo.

Each workflow takes a plugin registry built once by its caller and works through the detector
contract and the host's :class:`xadt.model.Model`; the CLI in ``xadt.cli`` only parses options
and prints.
"""
