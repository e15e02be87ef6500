"""Instructor tools: release student labs from solutions/ and grade submissions.

Run as ``python -m autograder release [LAB ...] [--check]`` and
``python -m autograder grade LAB --submissions PATH --out DIR [-j N]``.
"""
