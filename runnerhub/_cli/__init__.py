"""The command line's insides; ``runnerhub.cli`` is the entry point and parser.

``_output`` writes (stdout for results, stderr for everything else), renders
tables with rich when stdout is a terminal and plain aligned columns otherwise;
``_progress`` is the stderr progress display of an inventory; ``_commands``
holds one coroutine per command. Nothing here is imported by ``runnerhub``
itself, and rich is imported only inside the functions that draw with it.
"""
