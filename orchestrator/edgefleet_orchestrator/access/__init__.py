"""Who may do what: operators' roles and scope, decided from the orchestrator's own config.

The broker says who sent a command (the operator in ``commands/{operator}/{verb}``); this
room decides whether that operator may run it (:mod:`.roles`), judging the app or node the
command names by its sites (:mod:`.targets`). Pure: values in, decisions out. The command
intake (:mod:`edgefleet_orchestrator.service.commands`) asks before every
handler and answers ``forbidden`` when the answer is no.
"""
