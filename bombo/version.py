"""bombo's version, the one place it is written (read by setup.py without
importing bombo, and by ``bombo.__version__``)."""
__version__ = '0.2.0'
