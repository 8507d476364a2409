#!/usr/bin/env python3
"""The peer loop of the latency bench: the architecture of the industrial
cloud-database paper, built from Mosquitto and PostgreSQL.

  devices --MQTT--> Mosquitto --> application X: INSERT into PostgreSQL
                                   (T2 on receipt, T3 after the commit)
  PostgreSQL AFTER INSERT trigger: pg_notify('weir_probe', row)
  application Y: LISTEN weir_probe (T4 on the notification) --MQTT-->
  Mosquitto --> `weir probe --loop-topic` (T5)

X and Y are one process with two threads and two database connections.
This is the second peer of bench/latency/run.sh (PEERS="nodered python");
the first, the one the issue asks for, is the Node-RED flow of
nodered/flows.json, and this is the same data path in Python (paho,
psycopg2), which shows how much of the loop's time is Node-RED's.
Y publishes {"seq","t1","t2","t3","t4"} (ns) to --out-topic/<device> at
QoS 1.

Usage: peer.py --mqtt HOST:PORT --dsn DSN [--in 'weir-probe/#'] [--out peer-loop]
"""
import argparse
import json
import queue
import select
import sys
import threading
import time

import paho.mqtt.client as mqtt
import psycopg2

SCHEMA = """
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
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mqtt", default="127.0.0.1:1883")
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--in", dest="inp", default="weir-probe/#")
    ap.add_argument("--out", default="peer-loop")
    a = ap.parse_args()
    host, port = a.mqtt.rsplit(":", 1)

    wconn = psycopg2.connect(a.dsn)
    wconn.autocommit = True
    with wconn.cursor() as c:
        c.execute(SCHEMA)
    lconn = psycopg2.connect(a.dsn)
    lconn.autocommit = True
    with lconn.cursor() as c:
        c.execute("LISTEN weir_probe")

    t3s = {}                 # id -> T3, written by X, read by Y
    t3_cond = threading.Condition()
    work = queue.Queue(maxsize=100000)

    pub = mqtt.Client(client_id="peer-y", protocol=mqtt.MQTTv311)
    pub.connect(host, int(port))
    pub.loop_start()

    def on_message(client, userdata, msg):
        t2 = time.time_ns()
        work.put((t2, msg.topic, msg.payload))

    sub = mqtt.Client(client_id="peer-x", protocol=mqtt.MQTTv311)
    sub.on_message = on_message
    sub.on_connect = lambda c, u, f, rc: c.subscribe(a.inp, qos=1)
    sub.connect(host, int(port))
    sub.loop_start()

    def writer():  # application X
        cur = wconn.cursor()
        while True:
            t2, topic, payload = work.get()
            try:
                d = json.loads(payload)
            except ValueError:
                continue
            cur.execute("INSERT INTO readings (device, seq, t1, t2, payload) "
                        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                        (d.get("device"), d.get("seq"), d.get("t1"), t2, payload.decode()))
            rid = cur.fetchone()[0]
            t3 = time.time_ns()  # autocommit: the INSERT is committed
            with t3_cond:
                t3s[rid] = t3
                t3_cond.notify_all()

    def listener():  # application Y
        while True:
            if select.select([lconn], [], [], 1.0)[0]:
                lconn.poll()
                t4 = time.time_ns()
                while lconn.notifies:
                    n = lconn.notifies.pop(0)
                    r = json.loads(n.payload)
                    with t3_cond:
                        t3_cond.wait_for(lambda: r["id"] in t3s, timeout=1.0)
                        t3 = t3s.pop(r["id"], 0)
                    pub.publish("%s/%s" % (a.out, r["device"]),
                                json.dumps({"seq": r["seq"], "t1": r["t1"], "t2": r["t2"],
                                            "t3": t3, "t4": t4}), qos=1)

    threading.Thread(target=writer, daemon=True).start()
    threading.Thread(target=listener, daemon=True).start()
    print("peer: ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
