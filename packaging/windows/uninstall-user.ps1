# Undoes install-user.ps1. UNTESTED (see install-user.ps1). Local users and their vaults
# (%APPDATA%\epa-desktop) are left alone.
param(
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA 'Programs\epa-desktop')
)
$ErrorActionPreference = 'Stop'

$epa = Join-Path $InstallDir 'epa.exe'
if (Test-Path $epa) { & $epa --no-autostart daemon stop 2>$null }
Remove-ItemProperty -ErrorAction SilentlyContinue -Path 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run' -Name 'epa-desktop-epad'
Remove-Item -ErrorAction SilentlyContinue -Recurse -Force 'HKCU:\Software\Classes\epa-desktop'
foreach ($exe in 'epad.exe', 'epa.exe', 'epa-sandbox.exe', 'epa-desktop.exe') {
    Remove-Item -ErrorAction SilentlyContinue -Force (Join-Path $InstallDir $exe)
}
if ((Test-Path $InstallDir) -and -not (Get-ChildItem $InstallDir)) { Remove-Item $InstallDir }
Write-Host 'uninstalled'
