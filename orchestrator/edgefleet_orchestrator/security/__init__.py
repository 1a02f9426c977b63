"""Trust and compliance decisions of the orchestrator: signing desired documents (and,
later, policy admission). Pure: keys and documents come in as values (the shell reads key
files), signed documents and verdicts go out; nothing here touches a file or the broker."""
