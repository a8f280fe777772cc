#!/bin/sh
# Rebuilds kirchberg.pmtiles, the basemap of the browser tests, from real
# OpenStreetMap data shipped in a Debian package (see README.md).
# Needs: apt-get install python-osmnx-doc osmium-tool tilemaker; pip install pmtiles
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/doc/python-osmnx-doc/examples/tests/input_data/planet_10.068,48.135_10.071,48.137.osm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
osmium cat "$src" -o "$work/city.osm.pbf"
# tilemaker's OpenMapTiles example, without the layers read from shapefiles
# (ocean, urban areas, ice, glaciers), from zoom 10.
python3 - "$work/config.json" <<'PY'
import json, sys
c = json.load(open('/usr/share/doc/tilemaker/examples/config-openmaptiles.json'))
c['layers'] = {k: v for k, v in c['layers'].items() if 'source' not in v}
c['settings']['minzoom'] = 10
json.dump(c, open(sys.argv[1], 'w'), indent=1)
PY
tilemaker --input "$work/city.osm.pbf" --output "$work/city.mbtiles" \
  --config "$work/config.json" \
  --process /usr/share/doc/tilemaker/examples/process-openmaptiles.lua
pmtiles-convert "$work/city.mbtiles" "$here/kirchberg.pmtiles"
