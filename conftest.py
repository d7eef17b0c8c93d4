"""pytest collects the layer tests in layers/tests/*.yaml (bakery/pytest_plugin.py)."""

pytest_plugins = ["bakery.pytest_plugin"]
