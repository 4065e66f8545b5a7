"""Repositories: each module's collections behind one class, over a `Session`.

A repository knows where its documents live and what shape they have; services ask it for
documents and hand it changes. All of them read and write through a `Session`
(`functions.adapters.repositories.session`), so the same repository code runs on Firestore in
production and on the in-memory store of the fast service tests.
"""
