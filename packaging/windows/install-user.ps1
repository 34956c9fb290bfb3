# epa-desktop per-user install for Windows. UNTESTED: written from the documented registry
# layout, never run. No administrator rights needed; everything goes to HKCU and %LOCALAPPDATA%.
#
#   powershell -ExecutionPolicy Bypass -File install-user.ps1 -BinDir target\release
#
# Copies epad.exe, epa.exe, epa-sandbox.exe (and epa-desktop.exe if present), starts epad at
# login (HKCU Run key) and registers the epa-desktop: URL protocol for the login callback.
param(
    [Parameter(Mandatory = $true)][string]$BinDir,
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA 'Programs\epa-desktop')
)
$ErrorActionPreference = 'Stop'

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
foreach ($exe in 'epad.exe', 'epa.exe', 'epa-sandbox.exe', 'epa-desktop.exe') {
    $src = Join-Path $BinDir $exe
    if (Test-Path $src) { Copy-Item -Force $src $InstallDir }
    elseif ($exe -ne 'epa-desktop.exe') { throw "missing $src (build with cargo build --release)" }
}

# Autostart at login. epad is a console program: a window may show; clients start it on
# demand anyway, so this is optional.
$run = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run'
Set-ItemProperty -Path $run -Name 'epa-desktop-epad' -Value ('"' + (Join-Path $InstallDir 'epad.exe') + '"')

# URL protocol: epa-desktop://auth/callback?... goes to the GUI, or to `epa open-url` without it.
$gui = Join-Path $InstallDir 'epa-desktop.exe'
if (Test-Path $gui) { $command = '"' + $gui + '" "%1"' }
else { $command = '"' + (Join-Path $InstallDir 'epa.exe') + '" open-url -- "%1"' }
$key = 'HKCU:\Software\Classes\epa-desktop'
New-Item -Force -Path $key | Out-Null
Set-ItemProperty -Path $key -Name '(default)' -Value 'URL:epa-desktop Protocol'
Set-ItemProperty -Path $key -Name 'URL Protocol' -Value ''
New-Item -Force -Path "$key\shell\open\command" | Out-Null
Set-ItemProperty -Path "$key\shell\open\command" -Name '(default)' -Value $command

Write-Host "installed to $InstallDir; add it to PATH to use epa from a terminal"
