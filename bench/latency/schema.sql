-- The peer loop's table and trigger (bench/latency/run.sh applies it; peer.py
-- runs the same statements): every committed reading is NOTIFYed on channel
-- weir_probe with its id, device, seq, t1 and t2.
CREATE TABLE IF NOT EXISTS readings (
  id BIGSERIAL PRIMARY KEY, device TEXT, seq BIGINT, t1 BIGINT, t2 BIGINT,
  payload JSONB NOT NULL);
CREATE OR REPLACE FUNCTION readings_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('weir_probe', json_build_object('id', NEW.id, 'device', NEW.device,
    'seq', NEW.seq, 't1', NEW.t1, 't2', NEW.t2)::text);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS readings_notify ON readings;
CREATE TRIGGER readings_notify AFTER INSERT ON readings
  FOR EACH ROW EXECUTE FUNCTION readings_notify();
