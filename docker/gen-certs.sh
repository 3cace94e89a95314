#!/bin/sh
# Make a self-signed TLS certificate and a bearer token for the storage service, once.
#   gen-certs.sh DIR [NAME ...]   (names go into the certificate's subjectAltName;
#                                  default: storage localhost, plus IP 127.0.0.1)
# Writes DIR/server.pem (certificate; also the trainer's --tls-ca), DIR/server.key, DIR/token.
# Existing files are kept, so restarting the compose project does not rotate credentials.
set -eu
dir=${1:?usage: gen-certs.sh DIR [NAME ...]}
shift
[ "$#" -gt 0 ] || set -- storage localhost
san="IP:127.0.0.1"
for n in "$@"; do san="$san,DNS:$n"; done
mkdir -p "$dir"
umask 077
if [ ! -s "$dir/server.pem" ] || [ ! -s "$dir/server.key" ]; then
    openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes \
        -keyout "$dir/server.key" -out "$dir/server.pem" \
        -subj "/CN=$1" -addext "subjectAltName=$san" 2>/dev/null
    chmod 644 "$dir/server.pem"
    echo "gen-certs: wrote $dir/server.pem and $dir/server.key ($san)"
fi
if [ ! -s "$dir/token" ]; then
    openssl rand -hex 32 > "$dir/token"
    echo "gen-certs: wrote $dir/token"
fi
# The service and the trainer run as non-root users: let them read the key and the token.
chmod 644 "$dir/server.key" "$dir/token"
