DROP TABLE IF EXISTS {{ staging }}
