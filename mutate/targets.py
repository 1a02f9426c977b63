"""The modules ``make mutate`` mutates, each with the unit tests meant to pin it."""

from __future__ import annotations

MANIFEST_TESTS = [
    "tests/unit/test_protocol_words.py",
    "tests/unit/test_manifest.py",
    "tests/unit/test_manifest_scaling.py",
    "tests/unit/test_manifest_service.py",
    "tests/unit/test_manifest_diff.py",
    "tests/unit/test_cli_validate.py",
    "tests/unit/test_manifest_files.py",
    "tests/unit/test_manifest_blocks.py",
    "tests/unit/test_manifest_app.py",
]
"""Every module of the manifest package is pinned by the same manifest tests."""


# (module, the unit tests meant to pin it), fastest first: with -x a kill stops at the
# first failure. Unit tests only: a mutant run must take seconds. Not here: the protocol
# package's I/O shell (session.py, mqtt_client.py: the aiomqtt connection loop), pinned by
# the broker-tier tests (tests/integration/test_session*.py), far too slow per mutant.
TARGETS: dict[str, list[str]] = {
    "protocol/edgefleet_protocol/__init__.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_package_versions.py",
        "tests/unit/test_protocol_field_tables.py",
        "tests/unit/test_codec_models.py",
    ],
    "protocol/edgefleet_protocol/base.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/bounds.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_bounds.py",
        "tests/unit/test_codec_models.py",
    ],
    "protocol/edgefleet_protocol/broker.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_broker_url.py",
        "tests/unit/test_broker_acl.py",
        "tests/unit/test_cli_broker_url.py",
    ],
    "protocol/edgefleet_protocol/codec.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_codec_fast.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/commands.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_command_reply_rules.py",
        "tests/unit/test_command_contract_rules.py",
        "tests/unit/test_command_identity_rules.py",
        "tests/unit/test_scaling_commands.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_event_catalogue.py",
        "tests/unit/test_protocol_doc.py",
        "tests/unit/test_manifest.py",
    ],
    "protocol/edgefleet_protocol/compliance.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_compliance.py",
        "tests/unit/test_codec_models.py",
    ],
    "protocol/edgefleet_protocol/control_messages.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_protocol_field_tables.py",
        "tests/unit/test_control_message_rules.py",
        "tests/unit/test_node_message_rules.py",
        "tests/unit/test_command_reply_rules.py",
        "tests/unit/test_command_contract_rules.py",
        "tests/unit/test_protocol_doc.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_agent_admission.py",
        "tests/unit/test_compliance.py",
        "tests/unit/test_cli_views.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/errors.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_ids_topics.py",
    ],
    "protocol/edgefleet_protocol/events.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_event_catalogue.py",
        "tests/unit/test_protocol_doc.py",
    ],
    "protocol/edgefleet_protocol/ids.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_ids_topics.py",
    ],
    "protocol/edgefleet_protocol/limits.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_limits.py",
    ],
    "protocol/edgefleet_protocol/logs.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_logs_contract.py",
        "tests/unit/test_logs_reading.py",
        "tests/unit/test_codec_models.py",
    ],
    "protocol/edgefleet_protocol/node_messages.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_protocol_field_tables.py",
        "tests/unit/test_node_message_rules.py",
        "tests/unit/test_bounds.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_ids_topics.py",
        "tests/unit/test_reconcile.py",
        "tests/unit/test_agent_telemetry.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/policy.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_policy_rules.py",
        "tests/unit/test_policy.py",
        "tests/unit/test_compliance.py",
    ],
    "protocol/edgefleet_protocol/profiles.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_profile_rules.py",
        "tests/unit/test_profiles.py",
        "tests/unit/test_agent_capabilities.py",
    ],
    "protocol/edgefleet_protocol/rollout.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_rollout_wire.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_agent_revert.py",
        "tests/unit/test_rollout_machine.py",
    ],
    "protocol/edgefleet_protocol/scrape.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_metrics_endpoint.py",
        "tests/unit/test_metrics_exporter.py",
    ],
    "protocol/edgefleet_protocol/sealing.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_sealing.py",
    ],
    "protocol/edgefleet_protocol/signing.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_signature_rules.py",
        "tests/unit/test_keys_cli.py",
    ],
    "protocol/edgefleet_protocol/topics.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_ids_topics.py",
        "tests/unit/test_protocol_doc.py",
        "tests/unit/test_liveness.py",
        "tests/unit/test_registry.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/wire.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_wire_schedule.py",
    ],
    "protocol/edgefleet_protocol/workload.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_workload_spec_contract.py",
        "tests/unit/test_protocol_doc.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_manifest.py",
        "tests/unit/test_manifest_scaling.py",
        "tests/unit/test_agent_planner.py",
        "tests/unit/test_protocol_properties.py",
    ],
    "protocol/edgefleet_protocol/workload_options.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_workload_option_rules.py",
        "tests/unit/test_profiles.py",
        "tests/unit/test_codec_models.py",
        "tests/unit/test_manifest.py",
    ],
    "protocol/edgefleet_protocol/inbox.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_mqtt_inbound.py",
    ],
    "protocol/edgefleet_protocol/mqtt_inbound.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_mqtt_inbound.py",
        "tests/unit/test_mqtt_inbound_reader.py",
        "tests/unit/test_mqtt_inbound_closed_socket.py",
    ],
    "protocol/edgefleet_protocol/manifest/__init__.py": MANIFEST_TESTS,
    "protocol/edgefleet_protocol/manifest/app.py": MANIFEST_TESTS,
    "protocol/edgefleet_protocol/manifest/blocks.py": MANIFEST_TESTS,
    "protocol/edgefleet_protocol/manifest/diff.py": [
        "tests/unit/test_protocol_words.py",
        "tests/unit/test_manifest_diff.py",
    ],
    "protocol/edgefleet_protocol/manifest/files.py": MANIFEST_TESTS,
    "protocol/edgefleet_protocol/manifest/names.py": MANIFEST_TESTS,
    "protocol/edgefleet_protocol/manifest/rules.py": MANIFEST_TESTS,
    "edge-agent/edgefleet_agent/core/admission.py": [
        "tests/unit/test_agent_admission.py",
        "tests/unit/test_agent_core_rules.py",
        "tests/unit/test_event_catalogue.py",
    ],
    "edge-agent/edgefleet_agent/core/planner.py": [
        "tests/unit/test_agent_planner.py",
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/documents.py": [
        "tests/unit/test_reconcile.py",
        "tests/unit/test_reconcile_documents.py",
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/fleet_pass.py": [
        "tests/unit/test_fleet_pass_rules.py",
        "tests/unit/test_reconcile_memos.py",
        "tests/unit/test_reconcile.py",
        "tests/unit/test_reconcile_documents.py",
        "tests/unit/test_isolation.py",
        "tests/unit/test_document_sizes.py",
        "tests/unit/test_drain.py",
        "tests/unit/test_rebalance.py",
        "tests/unit/test_vertical.py",
        "tests/unit/test_autoscale.py",
        "tests/unit/test_rollout_surge.py",
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/status.py": [
        "tests/unit/test_app_status.py",
        "tests/unit/test_app_status_rows.py",
        "tests/unit/test_reconcile.py",
        "tests/unit/test_liveness.py",
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/sizes.py": [
        "tests/unit/test_document_sizes.py",
        "tests/unit/test_fleet_pass_rules.py",  # every reconcile module's __all__
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/isolation.py": [
        "tests/unit/test_isolation.py",
        "tests/unit/test_fleet_pass_rules.py",  # every reconcile module's __all__
    ],
    "orchestrator/edgefleet_orchestrator/reconcile/compliance.py": [
        "tests/unit/test_compliance.py",
    ],
    "orchestrator/edgefleet_orchestrator/access/targets.py": [
        "tests/unit/test_command_targets.py",
        "tests/unit/test_command_intake.py",
    ],
    "orchestrator/edgefleet_orchestrator/service/commands.py": [
        "tests/unit/test_command_intake.py",
        "tests/unit/test_command_targets.py",
        "tests/unit/test_scaling_commands.py",
        "tests/unit/test_service_placement.py",
    ],
}
