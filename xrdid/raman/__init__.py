"""Raman spectra: the spectrum type, its grid, preprocessing, data and model glue.

Modules are imported one by one (nothing here at package import), so the
training job can run with torch, numpy and scipy alone: ``grid``, ``augment``,
``pack`` and ``checkpoint`` import none of pybaselines, pymatgen or faiss.
"""
