"""Generate a ready-to-run production mosquitto set: config, TLS, passwords and ACLs.

The broker is where edgefleet's security model is enforced (DESIGN.md §5): each agent may
write only its own node topics and read only its own desired document, only the
orchestrator writes desired documents, operators write commands, dashboards only read.
This package turns a list of nodes and people into the files that make mosquitto 2.0
enforce exactly that.

Pure parts (values in, text out): :mod:`.users` (who exists, with which role), :mod:`.acl`
(ACL text per role), :mod:`.passwd` (the ``$7$`` password-file format), :mod:`.conf`
(mosquitto.conf text), :mod:`.bundle` (the whole file set in memory). :mod:`.certs` makes
keys and certificates. :mod:`.writer` is the only module that touches the file system.
``edgefleet broker config`` (:mod:`edgefleet_cli.commands.broker`) drives them.
"""

from edgefleet_cli.brokerconfig.acl import AclRule, acl_text, rules_for
from edgefleet_cli.brokerconfig.bundle import (
    ConfigRequest,
    GeneratedFile,
    build_config_set,
)
from edgefleet_cli.brokerconfig.passwd import hash_password, verify_password
from edgefleet_cli.brokerconfig.users import BrokerUser, Role, build_users, parse_node_ref
from edgefleet_cli.brokerconfig.writer import DirectoryNotEmptyError, write_config_set

__all__ = [
    "AclRule",
    "BrokerUser",
    "ConfigRequest",
    "DirectoryNotEmptyError",
    "GeneratedFile",
    "Role",
    "acl_text",
    "build_config_set",
    "build_users",
    "hash_password",
    "parse_node_ref",
    "rules_for",
    "verify_password",
    "write_config_set",
]
