"""The local host: runs function_app.py as the Functions host would, without Core Tools.

HTTP functions on http://localhost:7071/api, queue functions fed by an in-process bus with Service
Bus semantics, timer functions on their schedule, storage in Azurite. It discovers everything from
`function_app.app`; no route or logic is written twice. Not deployed (see .funcignore).
"""
