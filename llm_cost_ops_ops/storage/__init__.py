"""Object storage for backups. No Dagster imports here.

`base` is the store interface, `s3` / `local` its implementations (`s3_upload` the part-filling
multipart upload, `s3_errors` the botocore error mapping), `stream` the compress / hash / encrypt
pipelines, `crypto` the framed AES-256-GCM format, `manifest` the layout and the commit marker,
`catalog` what is stored per environment, `retention` the grandfather-father-son plan and its
executor. The PostgreSQL side (dump, backup, restore, drill) lives in `postgres`.
"""
