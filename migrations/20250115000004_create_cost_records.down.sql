DROP TABLE cost_records;
