DROP TABLE gdpr_consent_records;
