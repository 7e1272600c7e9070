#!/usr/bin/env bash
# `make test`: every test, against real PostgreSQL and Redis.
#
# Without PYTEST_ARGS the suite runs as three pytest processes side by side (much of each one's
# time is spent waiting on PostgreSQL, a started fleet or a subprocess): the fleet end-to-end
# tests (tests/) and the services' tests in two groups. They never meet: each has its own Redis
# database (TEST_REDIS_URL) and its own fleet port offset (TEST_FLEET_PORT_OFFSET), and every test
# database has a random name. Each group's lines are printed as they come, prefixed with the
# group's letter, so a slow or stuck group shows where it is; each group ends with its slowest
# tests. With PYTEST_ARGS (a selection: `make test PYTEST_ARGS="-k health"`) one process runs it.
set -uo pipefail
PY=${PY:-.venv/bin/python}
if [ -n "${PYTEST_ARGS:-}" ]; then
  # shellcheck disable=SC2086  # PYTEST_ARGS is a list of arguments
  exec "$PY" -m pytest $PYTEST_ARGS
fi
# The groups, of similar length (~11-13 minutes each on two cores, see each group's slowest tests):
# the fleet end-to-end tests with the imputation node's, then the services in two groups.
SUITES=(
  "${TEST_E2E_PATHS:-tests imputation-node/tests}"
  "${TEST_GROUP_B:-shared/tests service-registry/tests user-service/tests api-gateway/tests file-manager/tests}"
  "${TEST_GROUP_C:-notification/tests job-processor/tests monitoring/tests sandbox/tests}"
)
NAMES=(A B C)
redis=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
[[ $redis =~ /[0-9]+$ ]] && redis=${redis%/*}
offset=${TEST_FLEET_PORT_OFFSET:-20000}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
pids=()
for i in "${!SUITES[@]}"; do
  echo "group ${NAMES[$i]}: ${SUITES[$i]}"
  (
    # shellcheck disable=SC2086  # a group is a list of paths
    TEST_REDIS_URL="$redis/$i" TEST_FLEET_PORT_OFFSET=$((offset + 1000 * i)) \
      "$PY" -m pytest -q --durations=15 ${SUITES[$i]} 2>&1
    echo $? >"$log/$i.rc"
  ) | sed -u "s/^/[${NAMES[$i]}] /" &
  pids+=($!)
done
wait "${pids[@]}"
status=0
for i in "${!SUITES[@]}"; do
  rc=$(cat "$log/$i.rc" 2>/dev/null || echo 1)
  echo "group ${NAMES[$i]} (${SUITES[$i]}): exit $rc"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
