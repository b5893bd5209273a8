'use strict';
// Output formats of VBoxManage, written the way VirtualBox's own C++ prints them
// (VBoxManageInfo.cpp, VBoxManageList.cpp, VBoxManageSnapshot.cpp, VBoxManageMisc.cpp).

/** outputMachineReadableString(): escapes `"` and `\` with a backslash; newlines stay raw. */
function esc(value) {
  return String(value).replace(/["\\]/g, (c) => `\\${c}`);
}

/** `list vms`: `"%ls" {%s}` per machine, the name printed raw. */
function listVms(vms) {
  return vms.map((vm) => `"${vm.inaccessible ? '<inaccessible>' : vm.name}" {${vm.uuid}}\n`).join('');
}

/** showSnapshots() in machine-readable mode: names and descriptions printed raw. */
function snapshotTree(snapshots, currentUuid) {
  const roots = snapshots.filter((s) => s.parent === null);
  let out = '';
  const walk = (s, prefix) => {
    out += `SnapshotName${prefix}="${s.name}"\n`;
    out += `SnapshotUUID${prefix}="${s.uuid}"\n`;
    if (s.description) out += `SnapshotDescription${prefix}="${s.description}"\n`;
    if (s.uuid === currentUuid) {
      out += `CurrentSnapshotName="${s.name}"\n`;
      out += `CurrentSnapshotUUID="${s.uuid}"\n`;
      out += `CurrentSnapshotNode="SnapshotName${prefix}"\n`;
    }
    snapshots.filter((c) => c.parent === s.uuid).forEach((c, i) => walk(c, `${prefix}-${i + 1}`));
  };
  // VirtualBox has one root snapshot; print every parentless one the same way for robustness.
  roots.forEach((r) => walk(r, ''));
  return out;
}

/** `getextradata <vm> enumerate`. */
function extraData(map) {
  return Object.entries(map)
    .map(([k, v]) => `Key: ${k}, Value: ${v}\n`)
    .join('');
}

/** The machine-readable lines of NIC 1. */
function nicLines(vm) {
  const type = vm.nic1 || 'nat';
  if (type === 'none') return 'nic1="none"\n';
  const own = {
    nat: 'natnet1="nat"\n',
    bridged: `bridgeadapter1="${esc(vm.bridgeAdapter || '')}"\n`,
    hostonly: `hostonlyadapter1="${esc(vm.hostOnlyAdapter || '')}"\n`,
    intnet: `intnet1="${esc(vm.intnet || '')}"\n`,
    null: '',
  }[type];
  return `${own}macaddress1="${vm.mac}"\ncableconnected1="${vm.cable || 'on'}"\nnic1="${type}"\nnictype1="82540EM"\nnicspeed1="0"\n`;
}

/**
 * `showvminfo --machinereadable` for a machine, built from a recorded output of the same
 * VirtualBox version: the recorded values are replaced by the machine's, everything else (the
 * version's quirks included) is kept as recorded.
 */
function showVmInfo(template, vm, home) {
  const folder = `${home}/VMs/${vm.name}`;
  let text = template;
  const set = (key, line) => {
    const re = new RegExp(`^${key}=.*$`, 'm');
    text = text.replace(re, () => line);
  };
  set('name', `name="${esc(vm.name)}"`);
  set('UUID', `UUID="${vm.uuid}"`);
  set('hardwareuuid', `hardwareuuid="${vm.uuid}"`);
  set('CfgFile', `CfgFile="${esc(`${folder}/${vm.name}.vbox`)}"`);
  set('SnapFldr', `SnapFldr="${esc(`${folder}/Snapshots`)}"`);
  set('LogFldr', `LogFldr="${esc(`${folder}/Logs`)}"`);
  set('ostype', `ostype="${esc(vm.ostypeDescription || vm.ostype)}"`);
  set('memory', `memory=${vm.memory}`);
  set('cpus', `cpus=${vm.cpus}`);
  set('VMState', `VMState="${vm.state}"`);
  set('VMStateChangeTime', `VMStateChangeTime="${vm.stateChangedAt}"`);
  // The data-transfer settings controlvm changed (as recorded: all off on a new VM).
  set('clipboard', `clipboard="${vm.clipboard || 'disabled'}"`);
  set('draganddrop', `draganddrop="${vm.draganddrop || 'disabled'}"`);
  set('audio_in', `audio_in="${vm.audioIn || 'off'}"`);
  set('audio_out', `audio_out="${vm.audioOut || 'off'}"`);
  if (vm.state !== 'running' && vm.state !== 'paused') text = text.replace(/^SessionName=.*\n/m, '');
  // description: a quoted value that may span lines
  text = text.replace(/^description="(?:[^"\\]|\\[\s\S])*"\n/m, () =>
    vm.description ? `description="${esc(vm.description)}"\n` : '',
  );
  // storage: the recorded controller and disk lines become the machine's own
  text = text.replace(/^storagecontroller\w+0=.*\n/gm, '').replace(/^"SATA-(?:ImageUUID-)?\d+-\d+"=.*\n/gm, '');
  let storage = '';
  if (vm.controller) {
    storage += `storagecontrollername0="SATA"\nstoragecontrollertype0="IntelAhci"\nstoragecontrollerinstance0="0"\n`;
    storage += `storagecontrollermaxportcount0="30"\nstoragecontrollerportcount0="${vm.controller.portcount}"\nstoragecontrollerbootable0="on"\n`;
    for (const d of vm.disks) {
      storage += `"SATA-${d.port}-0"="${esc(d.path)}"\n"SATA-ImageUUID-${d.port}-0"="${d.uuid}"\n`;
    }
  }
  // NIC 1 as VBoxManageInfo.cpp prints it: the attachment's own line, then the MAC, the cable
  // and the type; a disabled card is only `nic1="none"`.
  text = text.replace(/^natnet1=[\s\S]*?^nicspeed1=.*\n/m, () => `${storage}${nicLines(vm)}`);
  // snapshots are printed last
  const cut = text.search(/^SnapshotName=/m);
  if (cut !== -1) text = text.slice(0, cut);
  text += snapshotTree(vm.snapshots, vm.currentSnapshot);
  return text;
}

module.exports = { esc, listVms, snapshotTree, extraData, showVmInfo };
