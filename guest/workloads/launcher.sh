#!/bin/sh
# The desktop's launcher: a menu on the framebuffer console (tty1). Not a workload by itself:
# /etc/workloads/desktop starts it. Keys: the digit of an entry.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root TERM=linux
mounted=0
if [ -b /dev/vda ] && mount -t ext2 -o ro /dev/vda /mnt 2>/dev/null; then mounted=1; fi
play() {
  if [ "$mounted" = 1 ] && [ -f "/mnt/video-$1.m1v" ]; then
    /usr/bin/player "/mnt/video-$1.m1v" >/dev/null
  else
    echo "No video disk (start the machine with the workload disk)."
    sleep 2
  fi
}
while :; do
  printf '\033[2J\033[H'
  printf '\033[1;37;44m %-78s \033[0m\n' "doppel desktop"
  echo
  printf '   \033[1;33m1\033[0m  Play video 240p            \033[1;33m5\033[0m  Edit a note (vi)\n'
  printf '   \033[1;33m2\033[0m  Play video 360p            \033[1;33m6\033[0m  Terminal (shell)\n'
  printf '   \033[1;33m3\033[0m  Play video 480p            \033[1;33m7\033[0m  System information\n'
  printf '   \033[1;33m4\033[0m  Game (arrows, space, q)    \033[1;33m0\033[0m  Power off\n'
  echo
  printf '   Linux %s, up %s s, %s\n' "$(uname -r)" "$(cut -d ' ' -f 1 /proc/uptime)" \
    "$(awk '/MemTotal/ { printf "%d MB RAM", $2 / 1024 }' /proc/meminfo)"
  echo
  printf '   choose: '
  read -r -n 1 key || sleep 1
  echo
  case "$key" in
    1) play 240p ;;
    2) play 360p ;;
    3) play 480p ;;
    4) /usr/bin/game 60 >/dev/null ;;
    5) vi /root/note.txt ;;
    6) printf '\033[2J\033[H'; echo "Terminal: type exit to go back to the menu."; sh -l ;;
    7) printf '\033[2J\033[H'; uname -a; echo; cat /proc/cpuinfo; echo; free; echo; df -h 2>/dev/null
       printf '\npress a key '; read -r -n 1 _ ;;
    0) poweroff -f ;;
  esac
done
