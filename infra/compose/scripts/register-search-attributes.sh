#!/bin/sh
# One-shot (temporalio/admin-tools): create the namespace the workers use and register peftgrid's
# custom search attributes (src/common/constants.ts, SEARCH_ATTRIBUTES) as Keyword, so the grid
# workflow can upsert them and the Temporal UI can filter by them (PeftgridMethod = "lora").
# Idempotent: existing ones are left alone.
set -eu
: "${TEMPORAL_ADDRESS:?}"
NS=${TEMPORAL_NAMESPACE:-default}
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 2; done
temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$NS" >/dev/null 2>&1 \
  || temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$NS" --retention "${TEMPORAL_RETENTION:-30d}"
existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" -n "$NS" 2>/dev/null || true)
for name in PeftgridGrid PeftgridModel PeftgridMethod PeftgridStatus; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then echo "$name already registered"; continue; fi
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" -n "$NS" --name "$name" --type Keyword
done
echo "namespace $NS ready with peftgrid search attributes"
