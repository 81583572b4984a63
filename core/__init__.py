"""What every stage shares and nothing else: pure helpers with no Kafka, database or web imports."""
