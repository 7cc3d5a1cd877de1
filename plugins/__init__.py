"""Built-in detector plugins.

Each registers through the ``xadt`` entry-point group exactly as a third party's plugin would.
"""
