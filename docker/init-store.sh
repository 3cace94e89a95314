#!/bin/sh
# One-shot init for compose: credentials, then the Fashion-MNIST store (skipped when present).
#   init-store.sh CERT_DIR DATA_DIR STORE_ROOT
set -eu
certs=${1:?usage: init-store.sh CERT_DIR DATA_DIR STORE_ROOT}
data=${2:?usage: init-store.sh CERT_DIR DATA_DIR STORE_ROOT}
store=${3:?usage: init-store.sh CERT_DIR DATA_DIR STORE_ROOT}
"$(dirname "$0")/gen-certs.sh" "$certs" storage localhost
if [ -f "$store/fashion-mnist/train/manifest.json" ]; then
    echo "init-store: $store/fashion-mnist already ingested"
else
    nessa ingest "$data" "$store/fashion-mnist"
fi
