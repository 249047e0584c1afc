"""Backup and restore of devpi's package data (DESIGN.md section 4, phase 75).

``core`` is the backup program itself (export, stream, manifest, verify, restore); it runs both
here and, unchanged, inside the cluster beside the devpi pod, so it imports nothing from this
package. ``cluster`` drives it in the cluster (a Job from the CronJob, restore with devpi stopped).
"""
