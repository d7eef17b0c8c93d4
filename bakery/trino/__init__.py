"""Trino, Athena engine 3's own engine, on this machine: installed from Maven Central
(install), started as a single-node server over the store folder (server), and run as a
bake back-end for the steps whose SQL Athena runs (steps).
"""
