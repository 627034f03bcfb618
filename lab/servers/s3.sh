#!/bin/sh
# cfgsnap lab: entry point of node s3, in versitygw's image (Alpine).
# The gateway serves S3 on port 7070 from its posix backend in /data, where a
# bucket is a folder: bucket "cfgsnap" is made before it starts, so the first
# snapshot finds it (cfgsnap never creates buckets). Its root keys are the
# switch's S3 keys, from lab/setup.sh, bound read-only, and reach it through
# the environment, never the command line.
set -eu

ready=/run/cfgsnap-lab.ready
rm -f "$ready"
mkdir -p /data/cfgsnap

ROOT_ACCESS_KEY=$(head -n 1 /cfgsnap-lab/s3-access-key)
ROOT_SECRET_KEY=$(head -n 1 /cfgsnap-lab/s3-secret-key)
export ROOT_ACCESS_KEY ROOT_SECRET_KEY

gw=$(command -v versitygw || echo /app/versitygw)
echo "s3.sh: $gw on :7070, bucket cfgsnap in /data"
touch "$ready"
exec "$gw" --port :7070 posix /data
