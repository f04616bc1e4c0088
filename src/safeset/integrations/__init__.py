"""safeset as one step of a pipeline users already run: Hugging Face ``datasets``
(``hf_datasets``), Ray Data (``ray_data``) and webdataset (``webdataset``). Each adapter sits on
``safeset.Auditor`` and never writes a flagged image anywhere: flagged rows are dropped, or
their image bytes blanked, before anything downstream can store them.

Needs the extra: ``pip install 'safeset[integrations]'``.
"""
