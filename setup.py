from setuptools import setup

setup()  # all metadata lives in setup.cfg
