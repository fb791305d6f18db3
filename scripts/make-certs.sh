#!/usr/bin/env bash
# make-certs.sh DIR -- a throwaway PKI for tests and the demo.
#
# Creates DIR if needed and (re)writes, all PEM, mode 0644:
#   ca.pem / ca.key                         test CA "ioc-edge test CA"
#   server.pem / server.key                 CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1; serverAuth
#   client.pem / client.key                 CN=ioc-edge-client; clientAuth
#   office-a.pem / office-a.key             CN=bk-cho-don; clientAuth     (an office, CN = its site id)
#   office-b.pem / office-b.key             CN=bk-na-ri; clientAuth       (another office)
#   receiver.pem / receiver.key             CN=ioc-receiver-1; clientAuth (an ioc-receiver identity)
#   other-ca.pem / other-ca.key             an unrelated CA               (the "unknown CA" case)
#   other-server.pem / other-server.key     a localhost server cert signed by the other CA
#   wronghost-server.pem / wronghost-server.key
#                                           signed by the real CA, CN and SAN only
#                                           DNS:wrong-host.example     (the "wrong host name" case)
#   weakkey-server.pem / weakkey-server.key a localhost server cert with a 1024-bit RSA key (the
#                                           "weak key" case: refused at OpenSSL security level 2)
#
# EC P-256 keys (but the weak one), SHA-256, valid for 30 days. Keys are world-readable on purpose: a Mosquitto
# started as root drops to user "mosquitto" and must still read them. Never use these for
# anything but tests. Silent unless something fails.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 DIR" >&2
    exit 64
fi
dir=$1
days=30

command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 69; }
# Only DIR itself gets 0755 (parents keep the umask): enough for a broker that dropped privileges.
# shellcheck disable=SC2174
mkdir -p -m 0755 -- "$dir"

work=$(mktemp -d "$dir/.make-certs.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# Run a command quietly; show its output only when it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s: command failed: %s\n%s\n' "$0" "$*" "$out" >&2
        exit 1
    fi
}

new_key() {
    if [[ ${2:-} == rsa1024 ]]; then
        quiet openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$1"
    else
        quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
    fi
}

serial() {
    # 64 random bits with a leading 0x01 byte: positive and distinct per certificate.
    echo "0x01$(openssl rand -hex 8)"
}

# make_ca NAME CN
make_ca() {
    local name=$1 cn=$2
    new_key "$work/$name.key"
    quiet openssl req -new -x509 -sha256 -days "$days" -key "$work/$name.key" \
        -subj "/O=ioc-edge tests/CN=$cn" \
        -set_serial "$(serial)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$work/$name.pem"
}

# make_leaf NAME CA CN EKU SAN [KEYTYPE]   (SAN may be empty; KEYTYPE rsa1024 for a weak key)
make_leaf() {
    local name=$1 ca=$2 cn=$3 eku=$4 san=$5
    new_key "$work/$name.key" "${6:-}"
    quiet openssl req -new -sha256 -key "$work/$name.key" \
        -subj "/O=ioc-edge tests/CN=$cn" -out "$work/$name.csr"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid,issuer"
        if [[ -n $san ]]; then echo "subjectAltName=$san"; fi
    } >"$work/$name.ext"
    quiet openssl x509 -req -sha256 -days "$days" -in "$work/$name.csr" \
        -CA "$work/$ca.pem" -CAkey "$work/$ca.key" -set_serial "$(serial)" \
        -extfile "$work/$name.ext" -out "$work/$name.pem"
    local purpose=sslserver
    if [[ $eku == clientAuth ]]; then purpose=sslclient; fi
    quiet openssl verify -CAfile "$work/$ca.pem" -purpose "$purpose" "$work/$name.pem"
}

make_ca ca "ioc-edge test CA"
make_ca other-ca "ioc-edge unrelated test CA"

make_leaf server ca localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
make_leaf client ca ioc-edge-client clientAuth ""
make_leaf office-a ca bk-cho-don clientAuth ""
make_leaf office-b ca bk-na-ri clientAuth ""
make_leaf receiver ca ioc-receiver-1 clientAuth ""
make_leaf other-server other-ca localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
make_leaf wronghost-server ca wrong-host.example serverAuth "DNS:wrong-host.example"
make_leaf weakkey-server ca localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1" rsa1024

# Publish all files together only once everything succeeded.
for name in ca other-ca server client office-a office-b receiver other-server wronghost-server weakkey-server; do
    for ext in pem key; do
        chmod 0644 "$work/$name.$ext"
        mv -f -- "$work/$name.$ext" "$dir/$name.$ext"
    done
done
