#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: revert
short_description: Undo every usernsctl apply on a host
description:
  - Runs C(usernsctl revert --output json). Every file that usernsctl apply changed gets back its
    exact bytes from before the first apply (mode and owner too), files it created are removed,
    live settings are put back and, with I(restart), the daemons are restarted.
  - A file that something else changed since apply wrote it is not overwritten; the task fails
    naming it, unless I(force).
  - A second revert changes nothing.
  - In check mode it runs C(usernsctl revert --dry-run); with C(--diff) the diff of every file that
    would be restored is shown. A usernsctl without C(revert --dry-run) gets a prediction from its
    state directory instead, without diffs, and a warning saying so.
version_added: "0.1.0"
author: usernsctl authors (@usernsctl)
requirements:
  - the usernsctl binary on the managed host
  - "root on the managed host (C(become: true))"
options:
  force:
    description: Restore the backups even over files changed since apply wrote them (their current content is saved first).
    type: bool
    default: false
  restart:
    description: Restart the daemons whose config the revert changed and wait until they answer.
    type: bool
    default: false
  restart_command:
    description: Command (run by C(sh -c), with C(USERNSCTL_DAEMONS) set) that restarts the daemons when systemd is not PID 1.
    type: str
  restart_timeout:
    description: How long to wait for a restarted daemon to answer; a Go duration or seconds.
    type: str
  root:
    description: Revert the host tree at this path instead of the host.
    type: path
  binary:
    description: Path of the usernsctl binary on the host. Default is C(usernsctl) on C(PATH).
    type: path
notes:
  - Supports C(check_mode) and C(diff_mode).
seealso:
  - module: usernsctl.node.apply
'''

EXAMPLES = r'''
- name: Back to the state before usernsctl, dockerd restarted
  usernsctl.node.revert:
    restart: true
'''

RETURN = r'''
changed:
  description: Whether anything was (in check mode, would be) restored.
  returned: always
  type: bool
msg:
  description: usernsctl's verdict; on failure its message and its fix.
  returned: always
  type: str
  sample: reverted 6 files and 0 live settings to their state before usernsctl
changes:
  description: Every file restored (C(path), C(action), C(backup) of the content it replaced, C(diff)).
  returned: when usernsctl printed its report
  type: list
  elements: dict
live:
  description: Live settings put back.
  returned: when usernsctl printed its report
  type: list
  elements: dict
notes:
  description: What usernsctl left as it is, and why.
  returned: when usernsctl printed its report
  type: list
  elements: str
restart_required:
  description: A daemon must restart for the revert to take effect.
  returned: when usernsctl printed its report
  type: bool
restarted:
  description: usernsctl restarted the daemons and they answered.
  returned: when usernsctl printed its report
  type: bool
dry_run:
  description: The run was a dry run (check mode).
  returned: in check mode
  type: bool
predicted:
  description: Check mode against a usernsctl without C(revert --dry-run); C(changed) is predicted from its state directory.
  returned: in that case
  type: bool
fix:
  description: What to do about a refusal.
  returned: on refusal
  type: str
schema:
  description: The JSON contract of the object usernsctl printed.
  returned: when usernsctl printed its report
  type: str
  sample: usernsctl.revert/v1
version:
  description: usernsctl's version.
  returned: when usernsctl reports it
  type: str
cmd:
  description: The command line that ran.
  returned: when usernsctl ran
  type: list
  elements: str
rc:
  description: usernsctl's exit code.
  returned: when usernsctl ran
  type: int
stderr:
  description: usernsctl's stderr, when it wrote any.
  returned: when not empty
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.usernsctl.node.plugins.module_utils.usernsctl import (
    restart_args, run_change)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            force=dict(type='bool', default=False),
            restart=dict(type='bool', default=False),
            restart_command=dict(type='str'),
            restart_timeout=dict(type='str'),
            root=dict(type='path'),
            binary=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    args = restart_args(p)
    if p['force']:
        args.append('--force')
    if p['root']:
        args.append('--root=' + p['root'])
    run_change(module, 'revert', args)


if __name__ == '__main__':
    main()
