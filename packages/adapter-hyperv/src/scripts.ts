/**
 * The PowerShell scripts the Hyper-V adapter runs. Their text is fixed: no value is ever spliced
 * into it. Values arrive on stdin as `key=<base64 of UTF-8>` lines, which the prelude decodes
 * into the `$A` table. (Not JSON: ConvertFrom-Json in PowerShell 7 turns date-like strings into
 * DateTime objects, so a VM named "2024-01-01T00:00:00" would stop being a string.)
 *
 * Every script prints JSON on success, as ConvertTo-Json formats it, and on failure one line
 * `TANDEM-ERROR {json}` on stderr describing the PowerShell error record, then exits non-zero.
 * The scripts run on Windows PowerShell 5.1 and PowerShell 7.
 */

/** The operations the adapter performs, one script each. */
export type HyperVOp =
  | 'probe'
  | 'list'
  | 'get'
  | 'define'
  | 'start'
  | 'stop'
  | 'suspend'
  | 'resume'
  | 'save'
  | 'destroy'
  | 'snapshot-create'
  | 'snapshot-list'
  | 'snapshot-revert'
  | 'snapshot-delete'
  | 'connect-info'
  | 'set-network'
  | 'owner-get'
  | 'owner-set';

const PRELUDE = String.raw`$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
$A = @{}
foreach ($l in ([Console]::In.ReadToEnd() -split "\x60n")) {
  if ($l -match '^([A-Za-z0-9]+)=([A-Za-z0-9+/=]*)\r?$') { $A[$Matches[1]] = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($Matches[2])) }
}
function Stop-Tandem([string]$Id, [string]$Category, [string]$Message, $State) {
  $r = [ordered]@{ FullyQualifiedErrorId = $Id; Category = $Category; ExceptionType = 'Tandem'; Message = $Message }
  if ($null -ne $State) { $r.State = [int]$State }
  [Console]::Error.WriteLine('TANDEM-ERROR ' + (ConvertTo-Json -InputObject $r -Compress))
  exit 2
}
`;

/** Helper functions; a script includes only the ones its body uses. */
const HELPERS: Record<string, string> = {
  'Get-TandemVM': String.raw`function Get-TandemVM {
  $vms = @(Get-VM | Where-Object { $_.Name -ceq $A['name'] })
  if ($vms.Count -eq 0) { Stop-Tandem 'Tandem.VMNotFound' 'ObjectNotFound' 'Hyper-V has no virtual machine with this name.' }
  if ($vms.Count -gt 1) { Stop-Tandem 'Tandem.VMAmbiguous' 'ResourceExists' 'Hyper-V has several virtual machines with this name.' }
  $vms[0]
}
`,
  'Assert-TandemState': String.raw`function Assert-TandemState($vm) {
  if (@($A['allowed'] -split ',') -notcontains [string][int]$vm.State) {
    Stop-Tandem 'Tandem.InvalidState' 'InvalidOperation' 'The virtual machine is not in a state that allows this.' $vm.State
  }
}
`,
  'Find-TandemSnapshot': String.raw`function Find-TandemSnapshot($vm) {
  $s = @(Get-VMSnapshot -VM $vm | Where-Object { $_.Id.ToString() -eq $A['snapshot'] })
  if ($s.Count -eq 0) { Stop-Tandem 'Tandem.SnapshotNotFound' 'ObjectNotFound' 'The virtual machine has no checkpoint with this id.' }
  $s[0]
}
`,
  'Out-TandemVM': String.raw`function Out-TandemVM($vm) {
  $vm | Select-Object Name, Id, State, MemoryStartup, ProcessorCount, Uptime, CreationTime | ConvertTo-Json -Depth 2
}
`,
  'Out-TandemSnapshots': String.raw`function Out-TandemSnapshots($vm) {
  $v = Get-VM -Id $vm.Id
  $list = @(Get-VMSnapshot -VM $v | Select-Object Name, Id, ParentSnapshotId, CreationTime, SnapshotType, State)
  ConvertTo-Json -Depth 3 -InputObject ([ordered]@{ Current = $v.ParentSnapshotId; Snapshots = $list })
}
`,
};

const BODIES: Record<HyperVOp, string> = {
  probe: String.raw`$h = Get-VMHost
$m = Get-Module -ListAvailable -Name Hyper-V | Sort-Object Version -Descending | Select-Object -First 1
$p = New-Object Security.Principal.WindowsPrincipal ([Security.Principal.WindowsIdentity]::GetCurrent())
[pscustomobject]@{
  ComputerName = $h.ComputerName
  LogicalProcessorCount = $h.LogicalProcessorCount
  MemoryCapacity = $h.MemoryCapacity
  ModuleVersion = [string]$m.Version
  PSVersion = [string]$PSVersionTable.PSVersion
  OSVersion = [string][Environment]::OSVersion.Version
  IsAdministrator = $p.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
  IsHyperVAdministrator = $p.IsInRole((New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-578'))
} | ConvertTo-Json`,

  list: String.raw`ConvertTo-Json -Depth 2 -InputObject @(Get-VM | Select-Object Name, Id, State, MemoryStartup, ProcessorCount, Uptime, CreationTime)`,

  get: String.raw`Out-TandemVM (Get-TandemVM)`,

  define: String.raw`if (@(Get-VM | Where-Object { $_.Name -ceq $A['name'] }).Count -gt 0) {
  Stop-Tandem 'Tandem.VMExists' 'ResourceExists' 'A virtual machine with this name exists.'
}
$p = @{ Name = $A['name']; Generation = 2; MemoryStartupBytes = [long]$A['memoryBytes'] }
if ($A.ContainsKey('disk0')) { $p.VHDPath = $A['disk0'] } else { $p.NoVHD = $true }
if ($A.ContainsKey('switch')) { $p.SwitchName = $A['switch'] }
$vm = New-VM @p
try {
  Set-VMProcessor -VM $vm -Count ([int]$A['cpus'])
  Set-VM -VM $vm -CheckpointType Standard -Notes $A['notes']
  if ((Get-Command Set-VM).Parameters.ContainsKey('AutomaticCheckpointsEnabled')) { Set-VM -VM $vm -AutomaticCheckpointsEnabled $false }
  for ($i = 1; $A.ContainsKey("disk$i"); $i++) { Add-VMHardDiskDrive -VM $vm -Path $A["disk$i"] }
  if ($A.ContainsKey('mac')) { Get-VMNetworkAdapter -VM $vm | Set-VMNetworkAdapter -StaticMacAddress $A['mac'] }
  if ($A['network'] -eq 'none') { Get-VMNetworkAdapter -VM $vm | Remove-VMNetworkAdapter }
  if ($A.ContainsKey('secureBootTemplate')) { Set-VMFirmware -VM $vm -SecureBootTemplate $A['secureBootTemplate'] }
} catch {
  Remove-VM -VM $vm -Force
  throw
}
Out-TandemVM (Get-VM -Id $vm.Id)`,

  start: String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
Start-VM -VM $vm
Out-TandemVM (Get-VM -Id $vm.Id)`,

  stop: String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
switch ($A['mode']) {
  'turnoff' { Stop-VM -VM $vm -TurnOff -Force }
  'discard' { Remove-VMSavedState -VM $vm }
  'shutdown' {
    $j = Stop-VM -VM $vm -Force -AsJob
    if (-not (Wait-Job -Job $j -Timeout ([int]$A['timeoutSeconds']))) {
      Stop-Job -Job $j
      Remove-Job -Job $j -Force
      Stop-Tandem 'Tandem.ShutdownTimeout' 'OperationTimeout' 'The guest did not shut down in time.' (Get-VM -Id $vm.Id).State
    }
    Receive-Job -Job $j
  }
  default { Stop-Tandem 'Tandem.BadMode' 'InvalidArgument' 'Unknown stop mode.' }
}
Out-TandemVM (Get-VM -Id $vm.Id)`,

  suspend: String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
Suspend-VM -VM $vm
Out-TandemVM (Get-VM -Id $vm.Id)`,

  resume: String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
Resume-VM -VM $vm
Out-TandemVM (Get-VM -Id $vm.Id)`,

  save: String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
Save-VM -VM $vm
Out-TandemVM (Get-VM -Id $vm.Id)`,

  destroy: String.raw`$vm = Get-TandemVM
if ([int]$vm.State -eq 6) { Remove-VMSavedState -VM $vm }
elseif ([int]$vm.State -ne 3) { Stop-VM -VM $vm -TurnOff -Force }
$files = @()
$merged = @()
$checkpoints = @(Get-VMSnapshot -VM $vm | ForEach-Object { $_.Name })
if ($A['deleteDisks'] -eq '1') {
  $files += @(Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path })
  $files += @(Get-VMSnapshot -VM $vm | Get-VMHardDiskDrive | ForEach-Object { $_.Path })
} elseif ($checkpoints.Count -gt 0) {
  $merged = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path } | Where-Object { $_ -like '*.avhdx' })
  Get-VMSnapshot -VM $vm | Where-Object { $null -eq $_.ParentSnapshotId } | Remove-VMSnapshot -IncludeAllChildSnapshots -Confirm:$false
  $deadline = (Get-Date).AddSeconds([int]$A['mergeTimeoutSeconds'])
  while (@(Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path -like '*.avhdx' }).Count -gt 0) {
    if ((Get-Date) -gt $deadline) { Stop-Tandem 'Tandem.MergeTimeout' 'OperationTimeout' 'Hyper-V is still merging the checkpoints into the disks.' $vm.State }
    Start-Sleep -Seconds 1
  }
}
$disks = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path })
Remove-VM -VM $vm -Force
foreach ($f in ($files | Select-Object -Unique)) { Remove-Item -LiteralPath $f -Force }
ConvertTo-Json -InputObject ([ordered]@{ Removed = $vm.Id; Files = @($files | Select-Object -Unique); Checkpoints = $checkpoints; Merged = $merged; Disks = $disks })`,

  'snapshot-create': String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
Checkpoint-VM -VM $vm -SnapshotName $A['snapshot']
Out-TandemSnapshots $vm`,

  'snapshot-list': String.raw`Out-TandemSnapshots (Get-TandemVM)`,

  'snapshot-revert': String.raw`$vm = Get-TandemVM
$s = Find-TandemSnapshot $vm
if ([int]$vm.State -ne 3 -and [int]$vm.State -ne 6) { Stop-VM -VM $vm -TurnOff -Force }
Restore-VMSnapshot -VMSnapshot $s -Confirm:$false
$v = Get-VM -Id $vm.Id
if ($A['then'] -eq 'start' -or $A['then'] -eq 'pause') { if ([int]$v.State -ne 2) { Start-VM -VM $v } }
if ($A['then'] -eq 'pause') { Suspend-VM -VM $v }
Out-TandemVM (Get-VM -Id $vm.Id)`,

  'snapshot-delete': String.raw`$vm = Get-TandemVM
$s = Find-TandemSnapshot $vm
$p = @{ VMSnapshot = $s; Confirm = $false }
if ($A['children'] -eq '1') { $p.IncludeAllChildSnapshots = $true }
Remove-VMSnapshot @p
Out-TandemSnapshots $vm`,

  'connect-info': String.raw`$vm = Get-TandemVM
[pscustomobject]@{
  Name = $vm.Name
  Id = $vm.Id
  State = $vm.State
  ComputerName = $env:COMPUTERNAME
  IPAddresses = @(Get-VMNetworkAdapter -VM $vm | ForEach-Object { $_.IPAddresses })
} | ConvertTo-Json -Depth 3`,

  // The live network switch: the VM's first adapter is connected to another switch, or
  // disconnected for none; a VM defined without one (none) gets one hot-added (generation 2).
  // Hyper-V cannot change a running VM's MAC address, so a different one is refused.
  'set-network': String.raw`$vm = Get-TandemVM
Assert-TandemState $vm
$nics = @(Get-VMNetworkAdapter -VM $vm)
if ($nics.Count -gt 0 -and $A.ContainsKey('mac') -and $nics[0].MacAddress -ne $A['mac']) {
  Stop-Tandem 'Tandem.MacChange' 'InvalidOperation' 'Hyper-V cannot change the MAC address of a running virtual machine.' $vm.State
}
if ($A['network'] -eq 'none') {
  if ($nics.Count -gt 0) { Disconnect-VMNetworkAdapter -VMNetworkAdapter $nics[0] }
} elseif ($nics.Count -eq 0) {
  $p = @{ VM = $vm; SwitchName = $A['switch'] }
  if ($A.ContainsKey('mac')) { $p.StaticMacAddress = $A['mac'] }
  Add-VMNetworkAdapter @p
} else {
  Connect-VMNetworkAdapter -VMNetworkAdapter $nics[0] -SwitchName $A['switch']
}
ConvertTo-Json -Depth 2 -InputObject @(Get-VMNetworkAdapter -VM (Get-VM -Id $vm.Id) | Select-Object Name, SwitchName, MacAddress)`,

  // The owner record: one line `tandem-owner-uid: <uid>` in the VM's Notes, every other line kept.
  'owner-get': String.raw`Get-TandemVM | Select-Object Name, Id, Notes | ConvertTo-Json`,

  'owner-set': String.raw`$vm = Get-TandemVM
$line = 'tandem-owner-uid: ' + $A['uid']
$kept = @(([string]$vm.Notes) -split '\r?\n' | Where-Object { $_ -notmatch '^tandem-owner-uid: ' })
$rest = ($kept -join [Environment]::NewLine).TrimEnd()
if ($rest -eq '') { $notes = $line } else { $notes = $rest + [Environment]::NewLine + $line }
Set-VM -VM $vm -Notes $notes
Get-VM -Id $vm.Id | Select-Object Name, Id, Notes | ConvertTo-Json`,
};

const EPILOGUE = String.raw`} catch {
  $e = $_
  $r = [ordered]@{
    FullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId
    Category = [string]$e.CategoryInfo.Category
    ExceptionType = $e.Exception.GetType().FullName
    Message = $e.Exception.Message
  }
  [Console]::Error.WriteLine('TANDEM-ERROR ' + (ConvertTo-Json -InputObject $r -Compress))
  exit 1
}
`;

/** The full script for an operation. The first line names it (`# tandem-op: start`). */
export function scriptFor(op: HyperVOp): string {
  const body = BODIES[op]
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  const helpers = Object.entries(HELPERS)
    .filter(([name]) => BODIES[op].includes(name))
    .map(([, text]) => text)
    .join('');
  return `# tandem-op: ${op}\n${PRELUDE.replace('\\x60n', '`n')}${helpers}try {\n${body}\n${EPILOGUE}`;
}

/** Every operation's script, for tests that check what ran. */
export const HYPERV_SCRIPTS: Readonly<Record<HyperVOp, string>> = Object.fromEntries(
  (Object.keys(BODIES) as HyperVOp[]).map((op) => [op, scriptFor(op)]),
) as Record<HyperVOp, string>;

/** Encodes the values for a script's stdin: one `key=<base64 of UTF-8>` line each. */
export function encodeScriptInput(values: Readonly<Record<string, string | number | boolean | undefined>>): string {
  let out = '';
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    if (!/^[A-Za-z0-9]+$/.test(k)) throw new Error(`script input key ${k} is not alphanumeric`);
    const text = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
    out += `${k}=${Buffer.from(text, 'utf8').toString('base64')}\n`;
  }
  return out;
}
