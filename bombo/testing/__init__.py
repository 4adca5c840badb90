"""Helpers for tests and demos.

:mod:`bombo.testing.real_format` writes small synthetic datasets in the exact
on-disk formats of Pascal VOC2007 / VOC2012, SBD and COCO 2017, so that the
real readers, converters and split tools can run end to end without the real
data.
"""
