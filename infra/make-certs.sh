#!/bin/sh
# The certificates of the Dask cluster's mutual TLS: a CA of its own, and a certificate signed
# by it for the scheduler, the workers and the client (the flow process that submits tasks).
# Each side accepts only a peer whose certificate this CA signed.
#
#   infra/make-certs.sh                 # into infra/certs/ (git-ignored)
#   infra/make-certs.sh /some/folder    # anywhere else
#   CERT_DAYS=90 infra/make-certs.sh    # validity in days (default 365)
#
# Writes ca.crt, scheduler.crt/.key, worker.crt/.key, client.crt/.key and ca.key. ca.key is
# never mounted anywhere: it only signs; keep it offline or delete it. The stack mounts each
# role's key into that role's containers only (docs/security.md). Refuses to overwrite: to
# rotate, move the folder away, run this again and restart the stack.
set -eu

out=${1:-$(dirname "$0")/certs}
days=${CERT_DAYS:-365}

if [ -e "$out/ca.crt" ]; then
    echo "make-certs: $out/ca.crt exists; move $out away to make new certificates" >&2
    exit 1
fi
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed" >&2; exit 1; }

umask 077
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The CA: signs certificates, nothing else.
openssl req -x509 -new -newkey rsa:3072 -nodes -sha256 -days "$days" \
    -subj "/CN=mlops Dask CA" \
    -keyout "$out/ca.key" -out "$out/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null

# sign NAME USAGES SUBJECT_ALT_NAMES
sign() {
    cat > "$work/$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$2
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
subjectAltName=$3
EOF
    openssl req -new -newkey rsa:3072 -nodes -sha256 -subj "/CN=mlops dask $1" \
        -keyout "$out/$1.key" -out "$work/$1.csr" 2>/dev/null
    openssl x509 -req -sha256 -days "$days" -in "$work/$1.csr" \
        -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -CAserial "$work/ca.srl" \
        -extfile "$work/$1.ext" -out "$out/$1.crt" 2>/dev/null
}

# Scheduler and workers both accept connections and open them (workers talk to each other).
sign scheduler serverAuth,clientAuth \
    "DNS:dask-scheduler,DNS:dask-scheduler.mlops.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
sign worker serverAuth,clientAuth "DNS:dask-worker,DNS:localhost,IP:127.0.0.1"
# The client only connects.
sign client clientAuth "DNS:mlops-client"

# Certificates are public; keys are readable by their owner only. The containers run as uid
# 1000 (the image's `mlops` user): on a host where you are another uid, give them the keys
# with `sudo chown 1000 "$out"/scheduler.key "$out"/worker.key "$out"/client.key`.
chmod 755 "$out"
chmod 644 "$out"/ca.crt "$out"/scheduler.crt "$out"/worker.crt "$out"/client.crt
chmod 600 "$out"/*.key
echo "make-certs: CA, scheduler, worker and client certificates in $out (valid $days days)"
