# Sourced by e2e/run.sh when E2E_CELLULAR is set (issue 15): adds to the
# guest's staging tree what e2e/guest/cellular.sh needs to emulate a
# cellular path behind the gadget: iproute2's ip (busybox's cannot name a
# veth peer) and tc, ethtool (netem must see MTU-sized packets, not TSO
# super-packets, or one "loss" drops 40 segments), the qdisc and veth
# modules (run.sh builds e2e/bench, the timed client and upload sink).
#
#   E2E_CELLULAR=short  after the usual e2e: clean and lte, the default TCP
#                       variant, one 4 MiB run each way per path (CI's report)
#   E2E_CELLULAR=full   only the cellular set: four profiles, three TCP
#                       variants, three 16 MiB runs per cell, the stall target
#
# E2E_CELL_<NAME> overrides a setting of e2e/guest/cellular.sh (PROFILES,
# RUNS, SIZE_MB, VARIANTS, PATHS, STALL, STALL_DOWN_S, STALL_WINDOW_S,
# STALL_VARIANTS, STALL_DIRS, STALL_KINDS, RATE_DOWN, RATE_UP).
# Uses run.sh's $root, $stage, add() and stage_libs().
case "$E2E_CELLULAR" in
short)
	cell_conf='CELL_MODE=short CELL_PROFILES="clean lte" CELL_RUNS=1 CELL_SIZE_MB=4 CELL_VARIANTS="default" CELL_STALL=0'
	cell_limit=480 # seconds added to the guest's bound: about 6 minutes of this
	;;
full)
	cell_conf='CELL_MODE=full CELL_PROFILES="clean lte lossy stall" CELL_RUNS=3 CELL_SIZE_MB=16 CELL_VARIANTS="default rack cubic" CELL_STALL=10'
	touch "$stage/etc/cellular-only"
	cell_limit=7200
	;;
*)
	echo "e2e: E2E_CELLULAR=$E2E_CELLULAR: want short or full" >&2
	exit 1
	;;
esac
for name in PROFILES RUNS SIZE_MB VARIANTS PATHS STALL STALL_DOWN_S STALL_WINDOW_S STALL_VARIANTS STALL_DIRS STALL_KINDS RATE_DOWN RATE_UP; do
	var=E2E_CELL_$name
	[ -n "${!var:-}" ] && cell_conf="$cell_conf CELL_$name=\"${!var}\""
done
echo "$cell_conf" >"$stage/etc/cellular"
echo "e2e: cellular: $cell_conf"

for tool in /sbin/tc /bin/ip /sbin/ethtool; do
	[ -x "$tool" ] || { echo "e2e: $tool is missing (bash scripts/install-deps.sh installs iproute2 and ethtool)" >&2; exit 1; }
done
# iproute2's ip goes in as /opt/iproute2/ip, called by its path
# (under any other name it takes its name for a command). tc replaces
# busybox's applet, a symlink that cp would follow onto busybox.
rm -f "$stage/bin/tc" "$stage/bin/ethtool"
mkdir -p "$stage/opt/iproute2"
cp /bin/ip "$stage/opt/iproute2/ip"
cp /sbin/tc "$stage/bin/tc"
cp /sbin/ethtool "$stage/bin/ethtool"
stage_libs bin/tc opt/iproute2/ip bin/ethtool
for m in veth sch_netem; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/cellular.order"
