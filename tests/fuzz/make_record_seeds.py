#!/usr/bin/env python3
"""Writes seed corpora for the record fuzz targets: storage encodings of
records with every type for fuzz_record (format in src/record/record.h), and
sample payloads for fuzz_json, fuzz_csv and fuzz_line, including lines of the
UCI and DEBS files in /work/shared/data (or $WEIR_DATA_DIR) when present.
Run from anywhere; writes into tests/fuzz/corpus/<target>/."""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))

def varint(n):
    out = b""
    while True:
        b = n & 0x7F; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out

def zigzag(i): return ((i << 1) ^ (i >> 63)) & 0xFFFFFFFFFFFFFFFF

def field(name, tag, value=b""):
    name = name.encode()
    return varint(len(name)) + name + bytes([tag]) + value

def record(*fields): return b"\x01" + varint(len(fields)) + b"".join(fields)

def s(x): x = x.encode(); return varint(len(x)) + x

def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f: f.write(data)

write("fuzz_record", "empty", record())
write("fuzz_record", "sensor", record(
    field("device", 5, s("p07")), field("ts", 3, varint(zigzag(1732184400123))),
    field("temperature", 4, struct.pack("<d", 21.53)), field("humidity", 4, struct.pack("<d", 40.2)),
    field("seq", 3, varint(zigzag(123)))))
write("fuzz_record", "every_type", record(
    field("n", 0), field("f", 1), field("t", 2), field("min", 3, varint(zigzag(-2**63))),
    field("max", 3, varint(zigzag(2**63 - 1))), field("nan", 4, struct.pack("<d", float("nan"))),
    field("negz", 4, struct.pack("<d", -0.0)), field("s", 5, s("caf\u00e9 \"q\"\n\u20ac")),
    field("j", 6, s('{"a":[1,2.5,"x",null,true],"b":{}}')), field("", 5, s(""))))
write("fuzz_record", "nested_ws", record(field("j", 6, s(' [ 1 , {"a" : [ ] } ] '))))

json_seeds = {
    "sensor": '{"device":"p07","ts":1732184400123,"temperature":21.53,"humidity":40.2,"seq":123}',
    "types": '{"s":"x","i":-5,"d":1.5e-3,"t":true,"f":false,"n":null,"big":12345678901234567890}',
    "nested": '{"pos":{"x":1.50,"y":[1,2,{"z":"a b"}]},"list":[],"obj":{}}',
    "escapes": '{"e":"\\u00e9\\ud83d\\ude00\\"\\\\\\/\\b\\f\\n\\r\\t","caf\u00e9":"\u20ac"}',
    "schema": '{"device":17,"ts":"2024-11-21T10:20:00.5+01:00","temperature":"21","seq":"3",'
              '"serial":70,"on":"yes","cfg":"{\\"a\\": [1]}"}',
    "ndjson": '{"a":1}\n{"a":2,"b":[1]}\n\n{"a":3}\n',
    "array": '[{"a":1},{"b":"x"},5,{"c":[{}]}]',
    "spaces": ' \r\n\t{ "a" : 1 ,\n "b" : [ 1 , 2 ] }\n ',
}
for k, v in json_seeds.items(): write("fuzz_json", k, v.encode())

csv_seeds = {
    "quoting": 'a,b,"c",d\r\n1,"x,y","q""q", 7 \r\n"  60"," 7.02",,""\n',
    "schema": 't,k,n,d,s,b,j\n2016-01-11 17:00:00,dev1,5,2.5,0071,true,"{""a"":1}"\n'
              '1732184400,7,"3",1,x,0,[]\n',
    "multiline": 'a,b\n"line\nbreak",2\n',
    "tsv": '2012-02-22T16:46:28.9670320+00:00\t2556001\t13056\tok\r\n'
           '2012-02-22T16:46:28.9770284+00:00\t2556002\t0071\t"q\tq"\r\n',
}
for k, v in csv_seeds.items(): write("fuzz_csv", k, v.encode())

data = os.environ.get("WEIR_DATA_DIR", "/work/shared/data")
try:
    with open(os.path.join(data, "uci_appliances_energydata_complete.csv"), "rb") as f:
        write("fuzz_csv", "uci_head", b"".join(f.readline() for _ in range(4)))
    with open(os.path.join(data, "debs2012_gc_allData_first17000.tsv"), "rb") as f:
        write("fuzz_csv", "debs_head", b"".join(f.readline() for _ in range(3)))
except OSError:
    pass

line_seeds = {
    "simple": "cpu,host=a,region=eu usage=21.5,count=3i,ok=t 1732184400123456789",
    "types": 'm u=12u,i=-9i,f=-1.5e-3,s="say \\"hi\\" \\\\",b=FALSE,c=True',
    "escapes": "my\\ meas\\,ure,t\\ k\\=1=v\\ 1\\=\\, f\\ k=1i",
    "schema": 'climate,host=p07,at=1732184400123 value=21i,count=2,serial=12i,on=1i 5',
    "batch": "# comment\ncpu v=1 1\n\ncpu,host=b v=x\r\ncpu v=2\n",
}
for k, v in line_seeds.items(): write("fuzz_line", k, v.encode())
