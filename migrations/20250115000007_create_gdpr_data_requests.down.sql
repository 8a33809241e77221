DROP TABLE gdpr_data_requests;
