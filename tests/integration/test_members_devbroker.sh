#!/usr/bin/env bash
#
# tests/kafka/test_members.sh (queries over the group: two workers, a user
# query to either answers the owner's personal list) on the development
# broker, without a real Kafka broker.
#
# Environment (set by ctest): XS_BIN_DIR, XS_SOURCE_DIR.
set -euo pipefail
: "${XS_SOURCE_DIR:?}"
unset XS_KAFKA_BOOTSTRAP_FILE
exec bash "$XS_SOURCE_DIR/tests/kafka/test_members.sh"
