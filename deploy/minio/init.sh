#!/bin/sh
# One-shot MinIO set-up for docker-compose.yml (the `minio-init` container, image minio/mc):
# the evidence and backup buckets, and an access key for the services that reaches only those
# two (the root credentials stay with MinIO). Safe to run again: every step keeps what exists.
set -eu

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET" "local/$BACKUP_BUCKET"

policy="${TMPDIR:-/tmp}/betterworld-services.json"
cat >"$policy" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$S3_BUCKET", "arn:aws:s3:::$BACKUP_BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                 "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$S3_BUCKET/*", "arn:aws:s3:::$BACKUP_BUCKET/*"]
    }
  ]
}
EOF
mc admin policy create local betterworld-services "$policy"
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy the user already has is an error to mc: accept it when it is ours.
mc admin policy attach local betterworld-services --user "$S3_ACCESS_KEY_ID" 2>/dev/null \
  || mc admin user info local "$S3_ACCESS_KEY_ID" | grep -q betterworld-services
echo "buckets $S3_BUCKET and $BACKUP_BUCKET ready for $S3_ACCESS_KEY_ID"
