"""Every warehouse table and view the project keeps, named and created in one place.

One module per store (:mod:`.membership`, :mod:`.sync`, :mod:`.distributed`, :mod:`.hybrid`,
:mod:`.ingest`, :mod:`.gates`, :mod:`.staging`); each lists its names in ``TABLES``, and
``tests/test_layout.py`` checks that no other module spells them.
"""
